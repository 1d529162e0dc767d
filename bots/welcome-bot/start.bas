' welcome-bot: the seed's personalised greeting, grown a little.
' It shares user memory with sales-bot and support-bot: whoever learns your name,
' every bot knows it.
name = GET USER MEMORY("name")
language = GET USER MEMORY("language")

IF name = "" THEN
    TALK "Welcome! What's your name?"
    WHILE name = ""
        HEAR answer
        ' "Ana", "my name is Ana", "I'm ana.": keep what follows the usual lead-ins
        name = TRIM(answer)
        FOR EACH lead IN ["my name is ", "my name's ", "i'm ", "i am ", "call me ", "it's ", "this is ", "me llamo ", "soy ", "meu nome é ", "me chamo ", "sou "]
            IF LEFT(LOWER(name), LEN(lead)) = lead THEN
                name = TRIM(MID(name, LEN(lead) + 1))
                EXIT FOR
            END IF
        NEXT lead
        words = SPLIT(REPLACE(REPLACE(REPLACE(name, ".", ""), "!", ""), ",", ""), " ")
        name = ""
        FOR EACH word IN words
            IF word <> "" THEN
                name = TRIM(name + " " + UPPER(LEFT(word, 1)) + MID(word, 2))
            END IF
        NEXT word
        ' a name is a word or three: "I need help with my invoice" is not one
        IF LEN(SPLIT(name, " ")) > 3 THEN
            name = ""
        END IF
        IF name = "" THEN
            TALK "Sorry, I didn't catch your name. What should I call you?"
        END IF
    WEND
    SET USER FACT "name", name
END IF

IF language = "" THEN
    TALK "Nice to meet you, " + name + "! Which language do you prefer? (English, Português, Español)"
    HEAR answer
    answer = LOWER(TRIM(answer))
    ' "Português", "portuguese", "I prefer Spanish", "es"
    IF INSTR(answer, "portugu") > 0 OR answer = "pt" THEN
        language = "pt-BR"
    ELSEIF INSTR(answer, "espa") > 0 OR INSTR(answer, "spanish") > 0 OR answer = "es" THEN
        language = "es"
    ELSE
        language = "en"
    END IF
    SET USER MEMORY "language", language
END IF

visits = GET USER MEMORY("welcome_visits")
visits = visits + 1
SET USER MEMORY "welcome_visits", visits
SET BOT MEMORY "last_visitor_language", language

IF language = "pt-BR" THEN
    TALK "Olá, " + name + "! Esta é a sua visita número " + visits + "."
ELSEIF language = "es" THEN
    TALK "¡Hola, " + name + "! Esta es tu visita número " + visits + "."
ELSE
    TALK "Hello, " + name + "! This is visit number " + visits + "."
END IF
